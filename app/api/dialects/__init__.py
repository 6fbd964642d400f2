"""Other services' query APIs (OpenAnalytics, Zenovay, Ovyxa) as thin routers over the one
Query engine: each parses its own parameters into a Query and renders its own shapes."""
