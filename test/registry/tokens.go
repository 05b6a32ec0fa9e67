package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// tokenServer issues the registry's bearer tokens (Docker's token auth):
// the registry sends clients to it with a WWW-Authenticate: Bearer
// challenge; it checks their basic credentials and returns a JWT signed by
// a key whose certificate the registry trusts.
type tokenServer struct {
	srv      *httptest.Server
	key      *ecdsa.PrivateKey
	certPath string
}

const (
	tokenService = "berth-test-registry"
	tokenIssuer  = "berth-test-issuer"
)

func startTokenServer(dir, user, password string) (*tokenServer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: tokenIssuer},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	ts := &tokenServer{key: key, certPath: filepath.Join(dir, "token-cert.pem")}
	if err := os.WriteFile(ts.certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != password {
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return
		}
		tok, err := ts.sign(u, r.URL.Query()["scope"])
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300})
	}))
	return ts, nil
}

// config is the registry's auth section. The realm names the host
// "localhost", not 127.0.0.1: registry clients refuse token servers at
// private IP literals other than the registry's own address.
func (ts *tokenServer) config() string {
	realm := strings.Replace(ts.srv.URL, "127.0.0.1", "localhost", 1) + "/token"
	return fmt.Sprintf("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
		realm, tokenService, tokenIssuer, ts.certPath)
}

// keyID is the registry's (libtrust's) name for a public key: the first
// 240 bits of the SHA-256 of its DER form, base32, in groups of four.
func keyID(der []byte) string {
	sum := sha256.Sum256(der)
	s := strings.TrimRight(base32.StdEncoding.EncodeToString(sum[:30]), "=")
	var groups []string
	for i := 0; i < len(s); i += 4 {
		groups = append(groups, s[i:min(i+4, len(s))])
	}
	return strings.Join(groups, ":")
}

// sign makes an ES256 JWT granting the scopes asked for
// ("repository:name:pull,push").
func (ts *tokenServer) sign(user string, scopes []string) (string, error) {
	pub, err := x509.MarshalPKIXPublicKey(&ts.key.PublicKey)
	if err != nil {
		return "", err
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	var grants []access
	for _, sc := range scopes {
		parts := strings.Split(sc, ":")
		if len(parts) < 3 {
			continue
		}
		grants = append(grants, access{Type: parts[0], Name: strings.Join(parts[1:len(parts)-1], ":"), Actions: strings.Split(parts[len(parts)-1], ",")})
	}
	now := time.Now()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	head := enc(map[string]string{"typ": "JWT", "alg": "ES256", "kid": keyID(pub)})
	claims := enc(map[string]any{"iss": tokenIssuer, "sub": user, "aud": tokenService,
		"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": fmt.Sprint(now.UnixNano()), "access": grants})
	digest := sha256.Sum256([]byte(head + "." + claims))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, digest[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return head + "." + claims + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
