"""The capture file: schema, classification, redaction, writer, import/export."""
