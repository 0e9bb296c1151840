-- Run once by the postgres image when its data volume is empty (POSTGRES_DB creates `k2`, the
-- Iceberg SQL catalog). Apicurio Registry stores its schemas in a database of its own.
CREATE DATABASE registry;
