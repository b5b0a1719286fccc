namespace Escrow.Tests.Domain;

// Time: the deadline reminders, what is due when, and an open dispute stopping the automatic commands.
public sealed partial class LifecycleTests
{
    [Fact]
    public void A_reminder_first_due_after_the_deadline_is_not_sent_since_it_would_quote_a_past_deadline()
    {
        var s = AnEscrow.Held();
        var inGrace = s.Deadline.AddMinutes(1);
        Assert.True(inGrace < s.ReplyDeadline);
        var due = Assert.Single(EscrowMachine.DueCommands(s, inGrace));
        s = s.Then(due, inGrace);
        Assert.Equal(EscrowStatus.Held, s.Status);
        Assert.True(s.Reminder50Sent && s.Reminder75Sent);
        Assert.False(s.HasEmail(EmailKind.DeadlineReminder75));
        Assert.False(s.HasEmail(EmailKind.DeadlineReminder50));
        Assert.Equal("reminders_skipped_past_deadline", s.History[^1].Event);
        Assert.Empty(EscrowMachine.DueCommands(s, inGrace.AddSeconds(1)));
        Assert.IsType<DeadlinePassed>(Assert.Single(EscrowMachine.DueCommands(s, s.ReplyDeadline)));
    }

    [Fact]
    public void Open_dispute_blocks_automatic_commands_until_an_operator_resolves_it()
    {
        var s = AnEscrow.Held();
        s = s.Then(new DisputeOpened("dp_1"), T0.AddHours(1));
        Assert.True(s.DisputeOpen);
        Assert.Contains(s.Outbox, e => e.Kind == EffectKind.RaiseAlert && e.Alert?.Name == "dispute_opened" && e.Detail!.StartsWith("Dispute dp_1 ", StringComparison.Ordinal));
        Assert.Equal("already_done", s.Decide(new DisputeOpened("dp_1"), T0.AddHours(1)).Rejection?.Code);

        var late = s.ReplyDeadline.AddMinutes(1);
        Assert.Empty(EscrowMachine.DueCommands(s, late));
        foreach (EscrowCommand automatic in new EscrowCommand[]
                 {
                     new DeadlinePassed(), new DeadlineReminderDue(EmailKind.DeadlineReminder50), new AcceptReply(T0.AddHours(2), "email"),
                     new UnpaidExpired(), new TransferRetryDue(), new RefundPermitRetryDue(), new RecipientPayoutsEnabled(),
                 })
        {
            var d = s.Decide(automatic, late);
            d.AssertRefused("dispute_open", unchanged: s);
        }

        s = s.Then(new OperatorResolveDispute("won"), late);
        Assert.False(s.DisputeOpen);
        Assert.Equal("no_dispute", s.Decide(new OperatorResolveDispute("again"), late).Rejection?.Code);
        var command = Assert.Single(EscrowMachine.DueCommands(s, late));
        Assert.IsType<DeadlinePassed>(command);
        Assert.Equal(EscrowStatus.RefundPending, s.Then(command, late).Status);
    }

    [Fact]
    public void Open_dispute_still_lets_operators_act()
    {
        var s = AnEscrow.Held().Then(new DisputeOpened("dp_1"), T0.AddHours(1));
        var d = s.Decide(new OperatorRelease("checked by hand"), T0.AddHours(2));
        Assert.True(d.Accepted);
        Assert.Equal(EscrowStatus.Processing, d.State.Status);
    }

    [Fact]
    public void Reminders_at_50_and_75_percent_are_each_sent_once()
    {
        var s = AnEscrow.Held();
        Assert.Equal(T0.AddHours(12), s.Reminder50At);
        Assert.Equal(T0.AddHours(18), s.Reminder75At);
        Assert.Empty(EscrowMachine.DueCommands(s, s.Reminder50At.AddTicks(-1)));
        Assert.Equal("not_due_yet", s.Decide(new DeadlineReminderDue(EmailKind.DeadlineReminder50), s.Reminder50At.AddTicks(-1)).Rejection?.Code);

        var fifty = Assert.IsType<DeadlineReminderDue>(Assert.Single(EscrowMachine.DueCommands(s, s.Reminder50At)));
        Assert.Equal(EmailKind.DeadlineReminder50, fifty.Reminder);
        s = s.Then(fifty, s.Reminder50At);
        Assert.True(s.Reminder50Sent);
        Assert.False(s.Reminder75Sent);
        Assert.Single(s.Outbox, e => e.Email == EmailKind.DeadlineReminder50);
        Assert.Equal("already_done", s.Decide(fifty, s.Reminder50At.AddMinutes(1)).Rejection?.Code);
        Assert.Empty(EscrowMachine.DueCommands(s, s.Reminder75At.AddTicks(-1)));

        var seventyFive = Assert.IsType<DeadlineReminderDue>(Assert.Single(EscrowMachine.DueCommands(s, s.Reminder75At)));
        Assert.Equal(EmailKind.DeadlineReminder75, seventyFive.Reminder);
        s = s.Then(seventyFive, s.Reminder75At);
        Assert.True(s.Reminder75Sent);
        Assert.Single(s.Outbox, e => e.Email == EmailKind.DeadlineReminder75);
        Assert.Equal("already_done", s.Decide(seventyFive, s.Reminder75At.AddMinutes(1)).Rejection?.Code);
        Assert.Empty(EscrowMachine.DueCommands(s, s.ReplyDeadline.AddTicks(-1)));
        Assert.Equal(new[] { "reminder_50", "reminder_75" }, s.Events()[^2..]);
    }

    [Fact]
    public void A_due_75_percent_reminder_marks_both_and_the_50_percent_one_is_never_sent()
    {
        var s = AnEscrow.Held();
        var late = s.Reminder75At.AddMinutes(5);
        var command = Assert.IsType<DeadlineReminderDue>(Assert.Single(EscrowMachine.DueCommands(s, late)));
        Assert.Equal(EmailKind.DeadlineReminder75, command.Reminder);
        s = s.Then(command, late);
        Assert.True(s.Reminder50Sent);
        Assert.True(s.Reminder75Sent);
        Assert.DoesNotContain(s.Outbox, e => e.Email == EmailKind.DeadlineReminder50);
        Assert.Equal("already_done", s.Decide(new DeadlineReminderDue(EmailKind.DeadlineReminder50), late).Rejection?.Code);
        Assert.Empty(EscrowMachine.DueCommands(s, late));
    }

    [Fact]
    public void Due_commands_at_the_reply_deadline_are_the_deadline_not_a_reminder()
    {
        var s = AnEscrow.Held();
        Assert.Empty(EscrowMachine.DueCommands(s with { Reminder50Sent = true, Reminder75Sent = true }, s.ReplyDeadline.AddTicks(-1)));
        Assert.IsType<DeadlinePassed>(Assert.Single(EscrowMachine.DueCommands(s, s.ReplyDeadline)));
    }

    [Fact]
    public void Due_commands_return_nothing_for_states_without_timers()
    {
        var far = T0.AddYears(1);
        Assert.Empty(EscrowMachine.DueCommands(AnEscrow.Processing(), far));
        Assert.Empty(EscrowMachine.DueCommands(AnEscrow.RefundPending(), far));
        Assert.Empty(EscrowMachine.DueCommands(AnEscrow.Released(), far));
        Assert.Empty(EscrowMachine.DueCommands(AnEscrow.Refunded(), far));
        Assert.Empty(EscrowMachine.DueCommands(AnEscrow.Cancelled(), far));
        Assert.Empty(EscrowMachine.DueCommands(AnEscrow.PaymentFailed(), far));
        Assert.Empty(EscrowMachine.DueCommands(new EscrowState(), far));
    }

    [Fact]
    public void Next_due_at_is_the_earliest_timer_or_pending_effect()
    {
        var awaiting = AnEscrow.AwaitingPayment();
        // The CreatePaymentIntent effect is due at once.
        Assert.Equal(T0, EscrowMachine.NextDueAt(awaiting));
        Assert.Equal(awaiting.UnpaidExpiresAt, EscrowMachine.NextDueAt(awaiting with { Outbox = [] }));

        var held = AnEscrow.Held() with { Outbox = [] };
        Assert.Equal(held.Reminder50At, EscrowMachine.NextDueAt(held));
        Assert.Equal(held.Reminder75At, EscrowMachine.NextDueAt(held with { Reminder50Sent = true }));
        Assert.Equal(held.ReplyDeadline, EscrowMachine.NextDueAt(held with { Reminder50Sent = true, Reminder75Sent = true }));
        Assert.Null(EscrowMachine.NextDueAt(held with { DisputeOpen = true }));

        var failed = AnEscrow.TransferFailed();
        Assert.Equal(failed.NextTransferAttemptAt, EscrowMachine.NextDueAt(failed with { Outbox = [] }));

        var delayed = AnEscrow.Released() with { Outbox = [new PendingEffect(50, EffectKind.SendEmail, EmailKind.PayoutSent, NotBefore: T0.AddDays(2))] };
        Assert.Equal(T0.AddDays(2), EscrowMachine.NextDueAt(delayed));
        Assert.Null(EscrowMachine.NextDueAt(AnEscrow.Released() with { Outbox = [] }));
        Assert.Null(EscrowMachine.NextDueAt(new EscrowState()));
    }
}
