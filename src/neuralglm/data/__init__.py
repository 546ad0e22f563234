"""From user data to validated arrays: formulas, design matrices, checks."""
