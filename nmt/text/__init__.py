"""Text as people type it: sentences, pass-through spans, casing, cuts, and the input pipeline
that prepares a sentence for the model and finishes its translation."""
