# Sensor drivers (MicroPython, micropython-lib style). Each driver exposes:
#   channels            number of values one sample has
#   scale_g             g (or volts) per LSB of the raw counts
#   read_raw_into(buf, off)   writes `channels` signed raw counts into buf[off:off+channels]
#                              (an array('h')), allocating nothing; raises OSError on bus errors
