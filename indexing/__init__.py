"""Indexing: loaders, chunking, retrieval embeddings, FAISS and summary stores, the SQL catalog."""
