namespace Escrow.Tests.Domain;

/// <summary>The table's pairs for states the status builders do not reach: disputes after release, stray cancels.</summary>
public sealed partial class TransitionTableTests
{
    private static EscrowState Named(string state) => state switch
    {
        "released_disputed" => AnEscrow.Disputed(),
        "released_disputed_share_reversed" => AnEscrow.DisputedAndReversed(),
        "cancelled_with_stray_cancel" => OperatorResolutionTests.FinishedWithStrayCancel(EscrowStatus.Cancelled),
        "payment_failed_with_stray_cancel" => OperatorResolutionTests.FinishedWithStrayCancel(EscrowStatus.PaymentFailed),
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, null),
    };

    /// <summary>Expected: the wire status of the accepted state and its needsOperator flag, or "!code" for a rejection.</summary>
    public static TheoryData<string, string, string> ResolutionPairs() => new()
    {
        { "released_disputed", "operator_resolve_dispute", "released" },
        { "released_disputed_share_reversed", "operator_resolve_dispute", "processing" },
        { "released_disputed_share_reversed", "dispute_closed", "processing" },
        { "released_disputed_share_reversed", "operator_retry_transfer", "!not_allowed_in_status" },
        { "cancelled_with_stray_cancel", "effect_failed_for_good", "cancelled" },
        { "payment_failed_with_stray_cancel", "effect_failed_for_good", "payment_failed" },
        { "cancelled_with_stray_cancel", "payment_intent_cancelled", "cancelled" },
    };

    [Theory]
    [MemberData(nameof(ResolutionPairs))]
    public void Resolution_pairs_have_the_expected_outcome_and_leave_no_flag_to_clear(string state, string commandName, string expected)
    {
        var s = Named(state);
        var now = s.History[^1].At.AddSeconds(1);

        var decision = AnEscrow.Machine.Decide(s, Command(commandName, s, now), now);

        Assert.Equal(expected, decision.Accepted ? decision.State.Status.ToWire() : "!" + decision.Rejection!.Code);
        if (decision.Accepted)
        {
            EscrowInvariants.Check(decision.State);
            Assert.NotEqual(DisputeStatus.Open, decision.State.DisputeStatus ?? DisputeStatus.Won);
            // A finished escrow accepts no operator action, so it must not be left waiting for one.
            Assert.False(decision.State.IsTerminal && decision.State.NeedsOperator);
        }
    }
}
