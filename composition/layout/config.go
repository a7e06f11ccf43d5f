package layout

import (
	"fmt"
	"regexp"
)

// AspectRatio is GridConfiguration.videoAspectRatio: the shape of the grid's
// tiles (not of the featured participant's).
type AspectRatio string

// The aspect ratios of the model's VideoAspectRatio enum.
const (
	AspectAuto     AspectRatio = "AUTO"     // tiles take the shape that fills the canvas
	AspectVideo    AspectRatio = "VIDEO"    // 16:9
	AspectSquare   AspectRatio = "SQUARE"   // 1:1
	AspectPortrait AspectRatio = "PORTRAIT" // 3:4
)

// FillMode is videoFillMode: how a participant's video fits its tile.
type FillMode string

// The fill modes of the model's VideoFillMode enum.
const (
	FillStretch FillMode = "FILL"    // the whole video, stretched to the tile
	FillCover   FillMode = "COVER"   // the tile covered, the video cropped to its shape
	FillContain FillMode = "CONTAIN" // the whole video inside the tile, letterboxed
)

// PipBehavior is PipConfiguration.pipBehavior: what the PiP window does when
// everyone else has left.
type PipBehavior string

// The behaviours of the model's PipBehavior enum.
const (
	PipStatic  PipBehavior = "STATIC"  // keeps its position and size
	PipDynamic PipBehavior = "DYNAMIC" // expands to the full composition
)

// PipPosition is PipConfiguration.pipPosition: the corner of the PiP window.
type PipPosition string

// The corners of the model's PipPosition enum.
const (
	PipTopLeft     PipPosition = "TOP_LEFT"
	PipTopRight    PipPosition = "TOP_RIGHT"
	PipBottomLeft  PipPosition = "BOTTOM_LEFT"
	PipBottomRight PipPosition = "BOTTOM_RIGHT"
)

// Defaults of the model (GridConfiguration, PipConfiguration).
const (
	DefaultGridGap     = 2 // a grid's gridGap
	DefaultPipGridGap  = 0 // a PiP layout's gridGap
	DefaultPipOffset   = 0
	DefaultAspectRatio = AspectVideo
	DefaultPipBehavior = PipStatic
	DefaultPipPosition = PipBottomRight
	// A grid's videoFillMode has no single default: COVER for the grid's
	// tiles, CONTAIN for the featured participant. A PiP layout's is COVER.
	DefaultGridFillMode     = FillCover
	DefaultFeaturedFillMode = FillContain
	DefaultPipFillMode      = FillCover
)

// MaxAttributeKeyLength is the model's AttributeKey length limit.
const MaxAttributeKeyLength = 128

// attributeKeyPattern is the model's AttributeKey pattern, [a-zA-Z0-9-_]*.
var attributeKeyPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]*$`)

// Config is a composition's layout: the API's LayoutConfiguration. At most
// one of Grid and PiP is set; neither means a grid with every default
// ("Default: Grid layout"). The JSON tags are the API's member names.
type Config struct {
	Grid *Grid `json:"grid,omitempty"`
	PiP  *PiP  `json:"pip,omitempty"`
}

// Grid is the API's GridConfiguration. The zero value of a field means
// "not set"; WithDefaults fills in IVS's defaults.
type Grid struct {
	// FeaturedParticipantAttribute names the token attribute that, set to
	// "true", puts a participant in the featured slot. "" means no featured
	// participant.
	FeaturedParticipantAttribute string `json:"featuredParticipantAttribute,omitempty"`
	// OmitStoppedVideo leaves out participants whose video is stopped (or
	// who publish no video at all).
	OmitStoppedVideo bool `json:"omitStoppedVideo,omitempty"`
	// VideoAspectRatio is the shape of the non-featured tiles; default VIDEO.
	VideoAspectRatio AspectRatio `json:"videoAspectRatio,omitempty"`
	// VideoFillMode applies to every tile when set. Left "" (also after
	// WithDefaults), grid tiles COVER and the featured participant CONTAINs.
	VideoFillMode FillMode `json:"videoFillMode,omitempty"`
	// GridGap is the space between tiles in pixels; nil means 2. A pointer
	// because 0 is a valid gap distinct from the default.
	GridGap *int `json:"gridGap,omitempty"`
	// ParticipantOrderAttribute names the token attribute holding each
	// participant's place in the order; "" orders by arrival alone.
	ParticipantOrderAttribute string `json:"participantOrderAttribute,omitempty"`
}

// PiP is the API's PipConfiguration. The zero value of a field means "not
// set"; WithDefaults fills in IVS's defaults.
type PiP struct {
	// FeaturedParticipantAttribute names the token attribute that, set to
	// "true", puts a participant in the featured slot: the main picture
	// behind the PiP window.
	FeaturedParticipantAttribute string `json:"featuredParticipantAttribute,omitempty"`
	// OmitStoppedVideo leaves out participants whose video is stopped (or
	// who publish no video at all).
	OmitStoppedVideo bool `json:"omitStoppedVideo,omitempty"`
	// VideoFillMode applies to every tile, the PiP window's included;
	// default COVER.
	VideoFillMode FillMode `json:"videoFillMode,omitempty"`
	// GridGap is the space between the tiles behind the PiP window; nil
	// means 0.
	GridGap *int `json:"gridGap,omitempty"`
	// PipParticipantAttribute names the token attribute that, set to
	// "true", puts a participant in the PiP window.
	PipParticipantAttribute string `json:"pipParticipantAttribute,omitempty"`
	// PipBehavior is what the window does when its participant is alone;
	// default STATIC.
	PipBehavior PipBehavior `json:"pipBehavior,omitempty"`
	// PipOffset is the window's distance in pixels from the two edges of
	// its corner; default 0.
	PipOffset int `json:"pipOffset,omitempty"`
	// PipPosition is the window's corner; default BOTTOM_RIGHT.
	PipPosition PipPosition `json:"pipPosition,omitempty"`
	// PipWidth and PipHeight size the window in pixels; nil means sized
	// from the canvas and the participant's video (see pipWindowSize).
	PipWidth  *int `json:"pipWidth,omitempty"`
	PipHeight *int `json:"pipHeight,omitempty"`
	// ParticipantOrderAttribute names the token attribute holding each
	// participant's place in the order; "" orders by arrival alone.
	ParticipantOrderAttribute string `json:"participantOrderAttribute,omitempty"`
}

// FieldError is a configuration value outside what the API allows. Field is
// the member's path in the API's JSON (e.g. "pip.pipWidth"), so the message
// can go back to the client as it is.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErrorf(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// WithDefaults returns c checked and with IVS's defaults filled in: exactly
// one of Grid and PiP set. It returns a *FieldError for the first value out
// of range.
func (c Config) WithDefaults() (Config, error) {
	switch {
	case c.Grid != nil && c.PiP != nil:
		// The model allows both members; a composition has one picture, and
		// guessing which one was meant would surprise one caller or another.
		return Config{}, fieldErrorf("layout", "set grid or pip, not both")
	case c.PiP != nil:
		p, err := c.PiP.WithDefaults()
		if err != nil {
			return Config{}, err
		}
		return Config{PiP: &p}, nil
	default:
		var g Grid
		if c.Grid != nil {
			g = *c.Grid
		}
		g, err := g.WithDefaults()
		if err != nil {
			return Config{}, err
		}
		return Config{Grid: &g}, nil
	}
}

// WithDefaults returns g checked and with IVS's defaults filled in, or a
// *FieldError for the first value out of range. VideoFillMode stays "" when
// unset, since its default differs between the featured slot and the grid.
func (g Grid) WithDefaults() (Grid, error) {
	if err := checkAttributeKey("grid.featuredParticipantAttribute", g.FeaturedParticipantAttribute); err != nil {
		return Grid{}, err
	}
	if err := checkAttributeKey("grid.participantOrderAttribute", g.ParticipantOrderAttribute); err != nil {
		return Grid{}, err
	}
	switch g.VideoAspectRatio {
	case "":
		g.VideoAspectRatio = DefaultAspectRatio
	case AspectAuto, AspectVideo, AspectSquare, AspectPortrait:
	default:
		return Grid{}, fieldErrorf("grid.videoAspectRatio", "must be one of AUTO, VIDEO, SQUARE, PORTRAIT, got %q", g.VideoAspectRatio)
	}
	if g.VideoFillMode != "" {
		if err := checkFillMode("grid.videoFillMode", g.VideoFillMode); err != nil {
			return Grid{}, err
		}
	}
	gap, err := checkGap("grid.gridGap", g.GridGap, DefaultGridGap)
	if err != nil {
		return Grid{}, err
	}
	g.GridGap = &gap
	return g, nil
}

// WithDefaults returns p checked and with IVS's defaults filled in, or a
// *FieldError for the first value out of range. PipWidth and PipHeight stay
// nil when unset: their default depends on the canvas and the video.
func (p PiP) WithDefaults() (PiP, error) {
	if err := checkAttributeKey("pip.featuredParticipantAttribute", p.FeaturedParticipantAttribute); err != nil {
		return PiP{}, err
	}
	if err := checkAttributeKey("pip.pipParticipantAttribute", p.PipParticipantAttribute); err != nil {
		return PiP{}, err
	}
	if err := checkAttributeKey("pip.participantOrderAttribute", p.ParticipantOrderAttribute); err != nil {
		return PiP{}, err
	}
	if p.VideoFillMode == "" {
		p.VideoFillMode = DefaultPipFillMode
	} else if err := checkFillMode("pip.videoFillMode", p.VideoFillMode); err != nil {
		return PiP{}, err
	}
	gap, err := checkGap("pip.gridGap", p.GridGap, DefaultPipGridGap)
	if err != nil {
		return PiP{}, err
	}
	p.GridGap = &gap
	switch p.PipBehavior {
	case "":
		p.PipBehavior = DefaultPipBehavior
	case PipStatic, PipDynamic:
	default:
		return PiP{}, fieldErrorf("pip.pipBehavior", "must be STATIC or DYNAMIC, got %q", p.PipBehavior)
	}
	switch p.PipPosition {
	case "":
		p.PipPosition = DefaultPipPosition
	case PipTopLeft, PipTopRight, PipBottomLeft, PipBottomRight:
	default:
		return PiP{}, fieldErrorf("pip.pipPosition", "must be one of TOP_LEFT, TOP_RIGHT, BOTTOM_LEFT, BOTTOM_RIGHT, got %q", p.PipPosition)
	}
	if p.PipOffset < 0 {
		return PiP{}, fieldErrorf("pip.pipOffset", "must be 0 or more, got %d", p.PipOffset)
	}
	if p.PipWidth != nil && *p.PipWidth < 1 {
		return PiP{}, fieldErrorf("pip.pipWidth", "must be 1 or more, got %d", *p.PipWidth)
	}
	if p.PipHeight != nil && *p.PipHeight < 1 {
		return PiP{}, fieldErrorf("pip.pipHeight", "must be 1 or more, got %d", *p.PipHeight)
	}
	return p, nil
}

func checkAttributeKey(field, key string) error {
	if len(key) > MaxAttributeKeyLength {
		return fieldErrorf(field, "must be at most %d characters, got %d", MaxAttributeKeyLength, len(key))
	}
	if !attributeKeyPattern.MatchString(key) {
		return fieldErrorf(field, "may hold only letters, digits, '-' and '_', got %q", key)
	}
	return nil
}

func checkFillMode(field string, mode FillMode) error {
	switch mode {
	case FillStretch, FillCover, FillContain:
		return nil
	}
	return fieldErrorf(field, "must be one of FILL, COVER, CONTAIN, got %q", mode)
}

func checkGap(field string, gap *int, def int) (int, error) {
	if gap == nil {
		return def, nil
	}
	if *gap < 0 {
		return 0, fieldErrorf(field, "must be 0 or more, got %d", *gap)
	}
	return *gap, nil
}
