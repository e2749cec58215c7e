"""Storage for the sandbox: real object-storage servers, CR storage locations and BR's layout."""
