-- The users of MLflow's basic-auth app, beside MLflow's own database (run on the first start).
CREATE DATABASE IF NOT EXISTS mlflow_auth;
GRANT ALL PRIVILEGES ON mlflow_auth.* TO 'mlflow'@'%';
