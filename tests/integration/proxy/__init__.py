"""Integration tests of the weather proxy: real redis-server, Open-Meteo emulator, real processes."""
