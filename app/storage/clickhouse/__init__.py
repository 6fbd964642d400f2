"""Avocet's events on ClickHouse (issue #24, preview). Nothing here is imported unless
storage = "clickhouse": the modules import chdb / clickhouse-connect, which come with the
optional extra (`pip install avocet[clickhouse]`) only."""
