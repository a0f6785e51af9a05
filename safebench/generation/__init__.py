"""Dataset generation: taxonomy debate, query generation and scoring, images, speech."""
