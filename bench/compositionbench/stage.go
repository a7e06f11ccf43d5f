package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt/bench/internal/clip"
	"github.com/ivsrt/ivsrt/bench/internal/publish"
	"github.com/ivsrt/ivsrt/bench/internal/serverproc"
)

// orderAttribute is the token attribute the compositions' grid orders
// the publishers by: publisher i has "i", so that the delay phase's
// switching publisher, 0, has the first tile.
const orderAttribute = "order"

// publisher is a WHIP peer of the bench publishing a source in real time.
type publisher struct {
	id   string // its participant id
	whip *publish.WHIP
	log  *publish.Log
	stop context.CancelFunc
	sent chan error // Send's end
}

// startPublisher creates a publish token for place order in the stage,
// connects over WHIP and starts sending src.
func startPublisher(ctx context.Context, api *ivsrealtime.Client, hc *http.Client, srv *serverproc.Server, stageARN string, order int, src publish.Source) (*publisher, error) {
	tok, err := api.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stageARN),
		UserId:       aws.String(fmt.Sprintf("publisher-%d", order)),
		Attributes:   map[string]string{orderAttribute: strconv.Itoa(order)},
		Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilityPublish}})
	if err != nil {
		return nil, fmt.Errorf("CreateParticipantToken: %w", err)
	}
	p := &publisher{id: aws.ToString(tok.ParticipantToken.ParticipantId), log: &publish.Log{Unit: clip.OpusPacket}}
	if p.whip, err = publish.DialWHIP(ctx, hc, srv.URL, aws.ToString(tok.ParticipantToken.Token)); err != nil {
		return nil, err
	}
	sendCtx, cancel := context.WithCancel(context.Background())
	p.stop, p.sent = cancel, make(chan error, 1)
	go func() { p.sent <- publish.Send(sendCtx, src, p.whip, p.log) }()
	return p, nil
}

// close stops sending and closes the connection; it returns why Send
// ended early, if it did.
func (p *publisher) close() error {
	p.stop()
	err := <-p.sent
	p.whip.Close()
	return err
}

// startPublishers starts n publishers into the stage at once, publisher
// i sending srcs(i).
func startPublishers(ctx context.Context, api *ivsrealtime.Client, hc *http.Client, srv *serverproc.Server, stageARN string, n int, srcs func(i int) publish.Source) ([]*publisher, error) {
	pubs := make([]*publisher, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { pubs[i], errs[i] = startPublisher(ctx, api, hc, srv, stageARN, i, srcs(i)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closePublishers(pubs)
		return nil, err
	}
	return pubs, nil
}

func closePublishers(pubs []*publisher) {
	var wg sync.WaitGroup
	for _, p := range pubs {
		if p != nil {
			wg.Go(func() { p.close() })
		}
	}
	wg.Wait()
}

// publishersFailed returns why a publisher stopped sending, if one did.
func publishersFailed(pubs []*publisher) error {
	for _, p := range pubs {
		select {
		case err := <-p.sent:
			p.sent <- err // for close
			return fmt.Errorf("publisher %s stopped: %v", p.id, err)
		default:
		}
	}
	return nil
}

// channelARN is the channel the compositions' channel destination sends
// to; the server maps it to the bench's RTMP listener
// (--composition-channel).
const channelARN = "arn:aws:ivs:us-east-1:123456789012:channel/compositionbench"

// compositionBucket is the S3 destination's bucket: a folder of the
// server's data folder (its default object store).
const compositionBucket = "compositionbench"

// createEncoder creates the encoder configuration of e.
func createEncoder(ctx context.Context, api *ivsrealtime.Client, e encoding) (string, error) {
	out, err := api.CreateEncoderConfiguration(ctx, &ivsrealtime.CreateEncoderConfigurationInput{Name: aws.String("compositionbench"),
		Video: &types.Video{Width: aws.Int32(int32(e.width)), Height: aws.Int32(int32(e.height)),
			Framerate: aws.Float32(float32(e.fps)), Bitrate: aws.Int32(int32(e.kbps * 1000))}})
	if err != nil {
		return "", fmt.Errorf("CreateEncoderConfiguration: %w", err)
	}
	return aws.ToString(out.EncoderConfiguration.Arn), nil
}

// channelDestination is a destination to the channel the listener
// receives.
func channelDestination(encoderARN string) types.DestinationConfiguration {
	return types.DestinationConfiguration{Name: aws.String("channel"), Channel: &types.ChannelDestinationConfiguration{
		ChannelArn: aws.String(channelARN), EncoderConfigurationArn: aws.String(encoderARN)}}
}

// s3Destination is a destination to the bench's bucket, in 2 s segments.
func s3Destination(ctx context.Context, api *ivsrealtime.Client, encoderARN string) (types.DestinationConfiguration, error) {
	sc, err := api.CreateStorageConfiguration(ctx, &ivsrealtime.CreateStorageConfigurationInput{
		Name: aws.String("compositionbench"), S3: &types.S3StorageConfiguration{BucketName: aws.String(compositionBucket)}})
	if err != nil {
		return types.DestinationConfiguration{}, fmt.Errorf("CreateStorageConfiguration: %w", err)
	}
	return types.DestinationConfiguration{Name: aws.String("s3"), S3: &types.S3DestinationConfiguration{
		StorageConfigurationArn:  sc.StorageConfiguration.Arn,
		EncoderConfigurationArns: []string{encoderARN},
		RecordingConfiguration: &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{
			TargetSegmentDurationSeconds: aws.Int32(segmentSeconds)}}}}, nil
}

// segmentSeconds is the S3 destination's HLS segments' target duration.
const segmentSeconds = 2

// startComposition composes the stage to dest in a grid ordered by the
// publishers' order attribute.
func startComposition(ctx context.Context, api *ivsrealtime.Client, stageARN string, dest types.DestinationConfiguration) (string, error) {
	out, err := api.StartComposition(ctx, &ivsrealtime.StartCompositionInput{StageArn: aws.String(stageARN),
		Layout:       &types.LayoutConfiguration{Grid: &types.GridConfiguration{ParticipantOrderAttribute: aws.String(orderAttribute)}},
		Destinations: []types.DestinationConfiguration{dest}})
	if err != nil {
		return "", fmt.Errorf("StartComposition: %w", err)
	}
	return aws.ToString(out.Composition.Arn), nil
}

// compositionState is a composition's state and its destination's.
func compositionState(ctx context.Context, api *ivsrealtime.Client, arn string) (string, error) {
	out, err := api.GetComposition(ctx, &ivsrealtime.GetCompositionInput{Arn: aws.String(arn)})
	if err != nil {
		return "", fmt.Errorf("GetComposition: %w", err)
	}
	s := string(out.Composition.State)
	for _, d := range out.Composition.Destinations {
		s += ", destination " + string(d.State)
	}
	return s, nil
}

// waitActive waits until the composition and its destination are ACTIVE.
func waitActive(ctx context.Context, api *ivsrealtime.Client, arn string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := api.GetComposition(ctx, &ivsrealtime.GetCompositionInput{Arn: aws.String(arn)})
		if err != nil {
			return fmt.Errorf("GetComposition: %w", err)
		}
		c := out.Composition
		active := c.State == types.CompositionStateActive
		for _, d := range c.Destinations {
			active = active && d.State == types.DestinationStateActive
		}
		if active {
			return nil
		}
		if c.State == types.CompositionStateFailed || c.State == types.CompositionStateStopped || time.Now().After(deadline) {
			s, _ := compositionState(ctx, api, arn)
			return fmt.Errorf("the composition is %s", s)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stopComposition stops it and waits until it has STOPPED: its encoder
// has finished its outputs.
func stopComposition(ctx context.Context, api *ivsrealtime.Client, arn string) error {
	if _, err := api.StopComposition(ctx, &ivsrealtime.StopCompositionInput{Arn: aws.String(arn)}); err != nil {
		return fmt.Errorf("StopComposition: %w", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := api.GetComposition(ctx, &ivsrealtime.GetCompositionInput{Arn: aws.String(arn)})
		if err != nil {
			return fmt.Errorf("GetComposition: %w", err)
		}
		switch out.Composition.State {
		case types.CompositionStateStopped:
			return nil
		case types.CompositionStateFailed:
			return errors.New("the composition FAILED on stopping")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the composition is still %s 20 s after StopComposition", out.Composition.State)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
