"""The pure core, table by table: no AWS, no clock, no network."""
