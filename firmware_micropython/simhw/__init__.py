# Simulated hardware for the virtual board (no machine.Pin/I2C/ADC there): a fake I2C bus with
# register-level MPU6050 and ADXL345, sample sources that feed them, and pins that record what
# the application switched. The drivers in drivers/ run unchanged against these.
