-- Airflow's metadata database, beside (not inside) our data database `mlops`.
CREATE DATABASE airflow;
