"""From a model directory to translations: search, int8 weights, the C step, target
vocabularies, and the Translator."""
