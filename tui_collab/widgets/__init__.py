"""The app's widgets; none of them touches the network."""
