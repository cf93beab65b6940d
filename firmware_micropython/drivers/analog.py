# One analog input through the ESP32 ADC (machine.ADC), as a 1-channel sensor.
# Raw counts are read_u16() (0..65535) shifted to signed around mid-scale, so they fit an
# array('h') like the accelerometers' counts; scale_g converts counts to volts.


class Analog:
    channels = 1

    def __init__(self, adc, full_scale_v=3.3):
        # adc: a machine.ADC (or anything with read_u16), already on its pin with its attenuation
        self.adc = adc
        self.scale_g = full_scale_v / 65536
        self.offset_v = full_scale_v / 2

    @classmethod
    def on_pin(cls, pin, full_scale_v=3.3):
        from machine import ADC, Pin

        adc = ADC(Pin(pin))
        try:
            adc.atten(ADC.ATTN_11DB)  # ~0..3.3 V on ESP32
        except AttributeError:
            pass
        return cls(adc, full_scale_v)

    def read_raw_into(self, out, off=0):
        out[off] = self.adc.read_u16() - 32768
