"""Corpora, the SentencePiece tokenizer, augmentation and batching: from files to training ids."""
