package layout_test

import (
	"fmt"

	"github.com/ivsrt/ivsrt/composition/layout"
)

// A host sharing a screen and two guests on a 1280×720 composition: the
// screen share in the featured slot, letterboxed (CONTAIN, the featured
// slot's default), the guests cropped to 16:9 tiles in a column beside it.
func ExampleArrange() {
	cfg := layout.Config{Grid: &layout.Grid{FeaturedParticipantAttribute: "screen-share"}}
	participants := []layout.Participant{
		{ID: "guest-1", JoinOrder: 2, PublishesVideo: true, VideoWidth: 640, VideoHeight: 480},
		{ID: "screen", JoinOrder: 1, PublishesVideo: true, VideoWidth: 1920, VideoHeight: 1200,
			Attributes: map[string]string{"screen-share": "true"}},
		{ID: "guest-2", JoinOrder: 3, PublishesVideo: true, VideoWidth: 1280, VideoHeight: 720},
	}
	scene, err := layout.Arrange(cfg, layout.Size{Width: 1280, Height: 720}, participants)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("featured:", scene.Featured)
	for _, t := range scene.Tiles {
		fmt.Printf("%-7s %-7s slot %v picture %v crop %v\n", t.ParticipantID, t.Fill, t.Slot, t.Picture, t.Crop)
	}
	// Output:
	// featured: screen
	// screen  CONTAIN slot 958x720+0+0 picture 958x598+0+60 crop 1920x1200+0+0
	// guest-1 COVER   slot 320x180+960+178 picture 320x180+960+178 crop 640x360+0+60
	// guest-2 COVER   slot 320x180+960+360 picture 320x180+960+360 crop 1280x720+0+0
}
