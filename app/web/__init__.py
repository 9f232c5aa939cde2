"""The Streamlit web UI, one module per page; ``streamlit_app.py`` is only the router."""
