package wire

// Uvarint decodes an unsigned varint from b, returning the value and the
// number of bytes used (0 if b is too short, -1 if malformed).
func Uvarint(b []byte) (uint32, int) {
	var v uint32
	for i := 0; i < 5 && i < len(b); i++ {
		v |= uint32(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	if len(b) >= 5 {
		return 0, -1
	}
	return 0, 0
}
