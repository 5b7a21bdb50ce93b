"""Dataset parsers: annotation text in, arrays out."""
