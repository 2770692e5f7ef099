"""NATS adapter: JetStream streams and consumers, heartbeats, high-water marks, command publishing."""
