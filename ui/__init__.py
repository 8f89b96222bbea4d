"""The Streamlit app: predict, explore model history, watch the data (`mlops ui`)."""
