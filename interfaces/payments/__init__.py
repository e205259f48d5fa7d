"""The payment processor's side: the HTTP adapter Farmacy calls it through, and a simulated
processor that runs as its own HTTP service (`farmacy payments simulate`)."""
