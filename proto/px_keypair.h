/* px_keypair: whether a private key belongs to a certificate, before either
 * is offered in a handshake. In memory; any key type wolfSSL reads (EC, RSA;
 * SEC1, PKCS#1 or PKCS#8 PEM). */
#ifndef PX_KEYPAIR_H
#define PX_KEYPAIR_H

/* Checks that key_pem is the private key of the first (leaf) certificate in
 * cert_pem by signing a fixed challenge with the key and verifying it with
 * the certificate's public key. (wolfSSL_CTX_check_private_key and
 * wolfSSL_X509_check_private_key accept any key in Debian's wolfSSL 5.5.4
 * build, and comparing public keys fails for a key file that does not carry
 * its public half.) Returns 0 when it is; PX_ERR_DENIED when it is not;
 * PX_ERR_INVAL when cert_pem holds no certificate or key_pem no private key;
 * PX_ERR_CRYPTO or PX_ERR_NOMEM. */
int px_keypair_check(const char *cert_pem, const char *key_pem);

#endif
