"""Local cloud extensions for LocalStack host mode (no Docker, no Java)."""
