"""The Router: one routing core under the SDK and the proxy."""
