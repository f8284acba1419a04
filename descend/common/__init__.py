"""What every package below the command line may import: scalar input checks and Numba kernel loading."""
