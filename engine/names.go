package engine

import (
	"crypto/rand"
	"math/big"
)

// Generated names are adjective_noun, as docker's, from Berth's own
// lists (things of the sea and harbour).
var (
	adjectives = []string{
		"amber", "brave", "calm", "deft", "eager", "fair", "gentle", "hardy", "keen", "lively",
		"mellow", "nimble", "patient", "quiet", "rapid", "steady", "tidal", "upbeat", "vivid", "wise",
		"bold", "crisp", "dusky", "frosty", "golden", "hidden", "jolly", "lucky", "misty", "noble",
	}
	nouns = []string{
		"anchor", "beacon", "buoy", "capstan", "dinghy", "ferry", "galley", "harbor", "jetty", "keel",
		"lantern", "mooring", "oar", "pier", "quay", "rudder", "schooner", "tide", "wharf", "yawl",
		"bollard", "cutter", "dock", "hull", "lighthouse", "mast", "pilot", "sail", "tugboat", "compass",
	}
)

func randomName() string {
	pick := func(list []string) string {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(list))))
		return list[n.Int64()]
	}
	return pick(adjectives) + "_" + pick(nouns)
}
