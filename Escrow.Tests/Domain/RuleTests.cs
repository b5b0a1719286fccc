using System.Runtime.CompilerServices;

namespace Escrow.Tests.Domain;

/// <summary>The rules that the grain, the effects and the endpoints read from one place in Domain/.</summary>
public sealed class RuleTests
{
    [Fact]
    public void The_reply_grace_rule_judges_a_reply_by_when_it_was_received()
    {
        var s = AnEscrow.Held();

        Assert.Equal(ReplyTiming.OnTime, s.ReplyTimingOf(s.Deadline));
        Assert.Equal(ReplyTiming.InGrace, s.ReplyTimingOf(s.Deadline.AddTicks(1)));
        Assert.Equal(ReplyTiming.InGrace, s.ReplyTimingOf(s.ReplyDeadline));
        Assert.Equal(ReplyTiming.TooLate, s.ReplyTimingOf(s.ReplyDeadline.AddTicks(1)));
        Assert.Equal(ReplyTiming.InGrace, ReplyTimings.Of(s.ReplyDeadline, s.Deadline, s.ReplyDeadline));
    }

    [Fact]
    public void The_machine_accepts_a_reply_exactly_when_the_grace_rule_says_it_is_not_too_late_and_records_the_grace()
    {
        var s = AnEscrow.Held();
        var handledAt = s.ReplyDeadline.AddHours(1);

        foreach (var receivedAt in new[] { s.Deadline, s.Deadline.AddTicks(1), s.ReplyDeadline, s.ReplyDeadline.AddTicks(1) })
        {
            var d = s.Decide(new AcceptReply(receivedAt, "email"), handledAt);
            var timing = s.ReplyTimingOf(receivedAt);
            Assert.Equal(timing != ReplyTiming.TooLate, d.Accepted);
            if (d.Accepted)
            {
                Assert.Equal(timing == ReplyTiming.InGrace, d.State.Reply!.GraceUsed);
            }
        }
    }

    [Fact]
    public void While_a_dispute_is_open_every_money_movement_but_the_reversal_and_the_cancel_waits_and_so_does_the_refund_permit()
    {
        EffectKind[] held =
        [
            EffectKind.CreatePaymentIntent, EffectKind.ConfirmPayment, EffectKind.CapturePayment, EffectKind.TransferShare,
            EffectKind.RefundPayment, EffectKind.RequestRefundPermit,
        ];

        Assert.Equal(held.Order().ToArray(), Enum.GetValues<EffectKind>().Where(Disputes.Holds).Order().ToArray());
        var disputed = AnEscrow.Processing() with { DisputeOpen = true };
        var capture = disputed.Outbox.Single(e => e.Kind == EffectKind.CapturePayment);
        Assert.False(Disputes.MayRun(disputed, capture));
        Assert.True(Disputes.MayRun(disputed with { DisputeOpen = false }, capture));
        Assert.True(Disputes.MayRun(disputed, disputed.Outbox.First(e => e.Kind == EffectKind.SendEmail)));
    }

    [Fact]
    public void A_command_is_named_by_its_type_in_snake_case_and_no_two_share_a_name()
    {
        Assert.Equal("operator_resolve_dispute", new OperatorResolveDispute("won elsewhere").Name);
        Assert.Equal("captured", new Captured(1, "ch_1").Name);
        Assert.Equal("deadline_passed", new DeadlinePassed().Name);
        var held = AnEscrow.Held();
        // Every name the transition table writes out is the name its command reports ("effect_failed_for_good" is the
        // table's own label for an EffectFailed that is permanent).
        Assert.All(TransitionTableTests.CommandNames.Where(n => n != "effect_failed_for_good"), n => Assert.Equal(n, TransitionTableTests.Command(n, held, held.StatusChangedAt).Name));
        var commands = typeof(EscrowCommand).Assembly.GetTypes().Where(t => t.IsSubclassOf(typeof(EscrowCommand))).ToArray();
        Assert.True(commands.Length > 30);
        var names = commands.Select(t => ((EscrowCommand)RuntimeHelpers.GetUninitializedObject(t)).Name).ToArray();
        Assert.All(names, n => Assert.Matches("^[a-z]+(_[a-z]+)*$", n));
        Assert.Equal(names.Length, names.Distinct().Count());
    }

    [Fact]
    public void The_money_movements_are_one_list_and_the_ones_back_to_the_sender_start_a_refund()
    {
        Assert.Equal(
            [EffectKind.CreatePaymentIntent, EffectKind.CapturePayment, EffectKind.TransferShare, EffectKind.CancelPaymentIntent,
                EffectKind.RefundPayment, EffectKind.ConfirmPayment, EffectKind.ReverseTransfer],
            Enum.GetValues<EffectKind>().Where(k => k.MovesMoney()).ToArray());
        Assert.Equal([EffectKind.CancelPaymentIntent, EffectKind.RefundPayment, EffectKind.ReverseTransfer], Enum.GetValues<EffectKind>().Where(k => k.MovesMoneyBack()).ToArray());
        Assert.False(EffectKind.TransferShare.HasOwnKeyAttempts());
        Assert.True(EffectKind.CapturePayment.HasOwnKeyAttempts());
        Assert.False(EffectKind.SendEmail.HasOwnKeyAttempts());
    }
}
