"""The host's link to boards.

transport (the one Transport interface and its errors) with virtual (the virtual board) and
serialport (a real board on a serial port or socket:// URL); deploy, flash, devices; for HIL:
framelink (frames over a Transport's byte stream), session (the closed loop), results (what a
session found), report (its timeline plot), hilboard (HIL device config and virtual deploy),
protocol (the frame format). Twins and models are handed in by the caller: nothing here imports
trainer/.
"""
