"""K2's records in Confluent's Avro wire format, a whole Arrow table at a time: :mod:`.codec`
frames and reads message values, :mod:`.encoding` and :mod:`.decoding` do Avro's binary
encoding column by column, :mod:`.physical` turns decoded values back into Arrow columns, and
:mod:`.resolution` decides how another writer schema is read.
"""
