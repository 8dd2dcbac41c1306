"""Tests of the OpenRouter simulator (aigateway.simulator) over real HTTP on loopback."""
