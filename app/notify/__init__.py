"""The notifier: notifications numbered and delivered to Subscriptions (`worker`), one POST
at a time (`sending`)."""
