"""Near-duplicate search over 64-bit perceptual hashes: candidate pairs with exact recall (`hamming`) and the
survivors of each connected group of near copies (`components`), both as Ray Data work over compact signatures."""
