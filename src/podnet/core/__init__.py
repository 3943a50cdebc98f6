"""The shared base layer: cluster configuration, names, address layout, TLS material, the journal of
what podnet created. Every other folder may import it; it imports nothing of podnet but itself."""
