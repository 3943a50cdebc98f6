"""The service proxy: Services + EndpointSlices → one nftables table per node (`table ip podnet`).

serviceports (what the proxy sees) → state (frontends and their endpoints, pure) → render (nft text,
pure) → nft (RealNft; FakeNft in tests) ← runner (informers, sync loop); nft_model + nft_interp
(the rules read back and evaluated for one packet: `podnet trace`); metrics, healthcheck,
lbip (LoadBalancer IPs on the node network), explain (`podnet trace` / `podnet top`).
Entry point for agents: `podnet.proxy.runner.run_proxy`.
"""
