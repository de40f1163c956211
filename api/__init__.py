"""The JSON APIs: admin (directory sync) and support (calls and texts)."""
