"""NetworkPolicy enforcement: compile (pure: policies + pods + namespaces → state), render (state → nft
text), nft (the adapter for podnet's policy table), runner (informers → syncs in the node agent),
explain (which rule allows or drops a packet, from the live table)."""
