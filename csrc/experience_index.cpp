// placeholder: replaced by the core implementation
