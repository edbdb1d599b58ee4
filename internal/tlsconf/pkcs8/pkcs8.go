// Package pkcs8 encrypts and decrypts PKCS#8 private keys with PBES2
// (PBKDF2 + AES-CBC or 3DES-CBC, RFC 8018), the format `openssl pkcs8
// -topk8` and `openssl genpkey -aes256` write as "ENCRYPTED PRIVATE KEY".
// The standard library parses only unencrypted PKCS#8, and the small
// third-party modules for this are unmaintained, so the ~150 lines live
// here.
package pkcs8

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
)

var (
	oidPBES2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}

	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}

	oidAES128CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidDESEDE3   = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}

	// PKCS#5 v1.5 / PKCS#12 PBES1 schemes: recognised only to name them.
	pbes1Prefixes = []asn1.ObjectIdentifier{{1, 2, 840, 113549, 1, 5}, {1, 2, 840, 113549, 1, 12, 1}}
)

// ErrIncorrectPassword is returned when decryption yields invalid padding
// or a structure that is not a private key.
var ErrIncorrectPassword = errors.New("incorrect password (or corrupt key)")

type encryptedPrivateKeyInfo struct {
	Algo          algorithmIdentifier
	EncryptedData []byte
}

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

type pbes2Params struct {
	KeyDerivationFunc algorithmIdentifier
	EncryptionScheme  algorithmIdentifier
}

type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                 `asn1:"optional"`
	PRF            algorithmIdentifier `asn1:"optional"`
}

type cipherSpec struct {
	keyLen int
	block  func([]byte) (cipher.Block, error)
}

func cipherFor(oid asn1.ObjectIdentifier) (cipherSpec, bool) {
	switch {
	case oid.Equal(oidAES128CBC):
		return cipherSpec{16, aes.NewCipher}, true
	case oid.Equal(oidAES192CBC):
		return cipherSpec{24, aes.NewCipher}, true
	case oid.Equal(oidAES256CBC):
		return cipherSpec{32, aes.NewCipher}, true
	case oid.Equal(oidDESEDE3):
		return cipherSpec{24, des.NewTripleDESCipher}, true
	}
	return cipherSpec{}, false
}

func prfFor(oid asn1.ObjectIdentifier) (func() hash.Hash, bool) {
	switch {
	case len(oid) == 0, oid.Equal(oidHMACSHA1):
		return sha1.New, true
	case oid.Equal(oidHMACSHA224):
		return sha256.New224, true
	case oid.Equal(oidHMACSHA256):
		return sha256.New, true
	case oid.Equal(oidHMACSHA384):
		return sha512.New384, true
	case oid.Equal(oidHMACSHA512):
		return sha512.New, true
	}
	return nil, false
}

// Decrypt returns the unencrypted PKCS#8 DER inside an
// EncryptedPrivateKeyInfo. Errors say exactly which part is unsupported
// or malformed.
func Decrypt(der, password []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil {
		return nil, fmt.Errorf("not an encrypted PKCS#8 key: %w", err)
	} else if len(rest) > 0 {
		return nil, errors.New("not an encrypted PKCS#8 key: trailing data")
	}
	if !info.Algo.Algorithm.Equal(oidPBES2) {
		for _, p := range pbes1Prefixes {
			if len(info.Algo.Algorithm) > len(p) && asn1.ObjectIdentifier(info.Algo.Algorithm[:len(p)]).Equal(p) {
				return nil, fmt.Errorf("legacy PBES1 encryption (%s) is not supported; re-encrypt with: openssl pkcs8 -topk8 -v2 aes-256-cbc", info.Algo.Algorithm)
			}
		}
		return nil, fmt.Errorf("unsupported encryption scheme %s (want PBES2)", info.Algo.Algorithm)
	}
	var params pbes2Params
	if _, err := asn1.Unmarshal(info.Algo.Parameters.FullBytes, &params); err != nil {
		return nil, fmt.Errorf("malformed PBES2 parameters: %w", err)
	}
	kdf := params.KeyDerivationFunc.Algorithm
	if kdf.Equal(oidScrypt) {
		return nil, errors.New("scrypt key derivation is not supported; re-encrypt with: openssl pkcs8 -topk8 -v2 aes-256-cbc")
	}
	if !kdf.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("unsupported key derivation function %s (want PBKDF2)", kdf)
	}
	var kp pbkdf2Params
	if _, err := asn1.Unmarshal(params.KeyDerivationFunc.Parameters.FullBytes, &kp); err != nil {
		return nil, fmt.Errorf("malformed PBKDF2 parameters: %w", err)
	}
	prf, ok := prfFor(kp.PRF.Algorithm)
	if !ok {
		return nil, fmt.Errorf("unsupported PBKDF2 pseudo-random function %s", kp.PRF.Algorithm)
	}
	cs, ok := cipherFor(params.EncryptionScheme.Algorithm)
	if !ok {
		return nil, fmt.Errorf("unsupported cipher %s (want AES-128/192/256-CBC or DES-EDE3-CBC)", params.EncryptionScheme.Algorithm)
	}
	if kp.KeyLength != 0 && kp.KeyLength != cs.keyLen {
		return nil, fmt.Errorf("PBKDF2 key length %d does not match the cipher's %d", kp.KeyLength, cs.keyLen)
	}
	if kp.IterationCount <= 0 || kp.IterationCount > 10_000_000 {
		return nil, fmt.Errorf("PBKDF2 iteration count %d is out of range", kp.IterationCount)
	}
	var iv []byte
	if _, err := asn1.Unmarshal(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil {
		return nil, fmt.Errorf("malformed cipher IV: %w", err)
	}
	key, err := pbkdf2.Key(prf, string(password), kp.Salt, kp.IterationCount, cs.keyLen)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	block, err := cs.block(key)
	if err != nil {
		return nil, err
	}
	if len(iv) != block.BlockSize() {
		return nil, fmt.Errorf("cipher IV is %d bytes, want %d", len(iv), block.BlockSize())
	}
	data := info.EncryptedData
	if len(data) == 0 || len(data)%block.BlockSize() != 0 {
		return nil, fmt.Errorf("encrypted data length %d is not a multiple of the block size", len(data))
	}
	plain := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, data)
	plain, err = unpad(plain, block.BlockSize())
	if err != nil {
		return nil, err
	}
	// A wrong password passes the padding check about 1 time in 256; the
	// decrypted bytes must also be a DER SEQUENCE.
	var probe asn1.RawValue
	if rest, err := asn1.Unmarshal(plain, &probe); err != nil || len(rest) > 0 || probe.Tag != asn1.TagSequence {
		return nil, ErrIncorrectPassword
	}
	return plain, nil
}

func unpad(b []byte, size int) ([]byte, error) {
	n := int(b[len(b)-1])
	if n == 0 || n > size || n > len(b) {
		return nil, ErrIncorrectPassword
	}
	for _, c := range b[len(b)-n:] {
		if int(c) != n {
			return nil, ErrIncorrectPassword
		}
	}
	return b[:len(b)-n], nil
}

// Encrypt wraps unencrypted PKCS#8 DER with PBES2 (PBKDF2-HMAC-SHA256,
// AES-256-CBC), matching what `openssl pkcs8 -topk8 -v2 aes-256-cbc`
// produces. Iterations <= 0 means 10000.
func Encrypt(der, password []byte, iterations int) ([]byte, error) {
	if iterations <= 0 {
		iterations = 10000
	}
	salt := make([]byte, 16)
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	key, err := pbkdf2.Key(sha256.New, string(password), salt, iterations, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	pad := aes.BlockSize - len(der)%aes.BlockSize
	data := append(append([]byte{}, der...), make([]byte, pad)...)
	for i := len(der); i < len(data); i++ {
		data[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(data, data)

	nullParams := asn1.RawValue{FullBytes: []byte{asn1.TagNull, 0}}
	kdfParams, err := asn1.Marshal(pbkdf2Params{Salt: salt, IterationCount: iterations,
		PRF: algorithmIdentifier{Algorithm: oidHMACSHA256, Parameters: nullParams}})
	if err != nil {
		return nil, err
	}
	ivDER, err := asn1.Marshal(iv)
	if err != nil {
		return nil, err
	}
	pbes2, err := asn1.Marshal(pbes2Params{
		KeyDerivationFunc: algorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kdfParams}},
		EncryptionScheme:  algorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: ivDER}},
	})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(encryptedPrivateKeyInfo{
		Algo:          algorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: pbes2}},
		EncryptedData: data,
	})
}
