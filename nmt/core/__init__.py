"""What every layer uses: checked configs, one-line errors, atomic files, the allocator setting."""
