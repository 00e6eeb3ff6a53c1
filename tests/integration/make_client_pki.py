#!/usr/bin/python3
"""What openssl's command line makes awkward, for test_access.sh
(python3-cryptography):

  make_client_pki.py expired CA_CERT CA_KEY CN OUT_PREFIX
      a client certificate signed by CA that expired a year ago
      (OUT_PREFIX.pem, OUT_PREFIX.key)
  make_client_pki.py sign ISSUER_CERT ISSUER_KEY SUBJECT OUT_PREFIX [ca]
      a certificate for SUBJECT (RFC 4514) signed by whatever ISSUER is (a
      CA, or a leaf posing as one); with "ca", a CA certificate (CA:TRUE,
      keyCertSign). OUT_PREFIX.pem holds it followed by ISSUER_CERT (the
      chain a client sends); OUT_PREFIX.key its key
  make_client_pki.py crl CA_CERT CA_KEY OUT [CERT_TO_REVOKE...]
      a PEM CRL signed by CA, next update in a week, revoking the given
      certificates' serials (none: an empty CRL)
"""
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def load(ca_cert, ca_key):
    with open(ca_cert, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(ca_key, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    return cert, key


def expired(ca_cert, ca_key, cn, prefix):
    ca, ca_k = load(ca_cert, ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=400))
            .not_valid_after(now - datetime.timedelta(days=365))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(ca_k, hashes.SHA256()))
    with open(prefix + ".pem", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(prefix + ".key", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def sign(issuer_cert, issuer_key, subject, prefix, kind):
    issuer, issuer_k = load(issuer_cert, issuer_key)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name.from_rfc4514_string(subject))
         .issuer_name(issuer.subject)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=2)))
    if kind == "ca":
        b = (b.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
             .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                          key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, key_cert_sign=True, crl_sign=True,
                                          encipher_only=False, decipher_only=False), True))
    else:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
    cert = b.sign(issuer_k, hashes.SHA256())
    with open(issuer_cert, "rb") as f:
        chain = f.read()
    with open(prefix + ".pem", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM) + chain)
    with open(prefix + ".key", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def crl(ca_cert, ca_key, out, revoke):
    ca, ca_k = load(ca_cert, ca_key)
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
         .last_update(now - datetime.timedelta(minutes=5))
         .next_update(now + datetime.timedelta(days=7)))
    for path in revoke:
        with open(path, "rb") as f:
            c = x509.load_pem_x509_certificate(f.read())
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder()
                                      .serial_number(c.serial_number)
                                      .revocation_date(now - datetime.timedelta(minutes=1))
                                      .build())
    with open(out, "wb") as f:
        f.write(b.sign(ca_k, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))


if __name__ == "__main__":
    if sys.argv[1] == "expired":
        expired(*sys.argv[2:6])
    elif sys.argv[1] == "sign":
        sign(*sys.argv[2:6], sys.argv[6] if len(sys.argv) > 6 else "leaf")
    elif sys.argv[1] == "crl":
        crl(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    else:
        sys.exit("unknown mode")
