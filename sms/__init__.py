"""Texting: the CODEWORD keyword, codeword texts, help and opt-out."""
