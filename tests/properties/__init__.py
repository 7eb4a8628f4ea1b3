"""Property-based tests (hypothesis) of the producer's CSV reader, the field rules and the packer."""
