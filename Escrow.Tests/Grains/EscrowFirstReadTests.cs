using Orleans.Core.Internal;

namespace Escrow.Tests.Grains;

/// <summary>
/// An escrow reads its stored state on the first call that needs it, not at activation: a new escrow's create inserts
/// its first state without a read. An id that already has an escrow fails that insert on the state's key and is read
/// then, so a retried create still gets the escrow it made, and takes no second slot of the recipient's day.
/// </summary>
public sealed class EscrowFirstReadTests(GatedStorageFixture f) : IClassFixture<GatedStorageFixture>
{
    private static CreateEscrow Request(string recipient, string? paymentMethodId = "pm_card_visa") =>
        new(recipient, "sender@example.com", TimeSpan.FromHours(24), "Subject", "A message of some length.", paymentMethodId, "AB12");

    private EscrowState? Stored(IEscrowGrain grain) => f.Storage.Stored<EscrowState>("escrow", grain.GetGrainId());

    private async Task DeactivateAsync(IEscrowGrain grain)
    {
        await grain.AsReference<IGrainManagementExtension>().DeactivateOnIdle();
        var management = f.Grains.GetGrain<IManagementGrain>(0);
        await Eventually.UntilAsync(async () => await management.GetActivationAddress(grain) is null, "the escrow's activation to be deactivated");
    }

    [Fact]
    public async Task A_new_escrows_create_writes_its_state_without_reading_it_first()
    {
        var recipient = await f.NewRecipientAsync();
        var (_, grain, view) = await f.NewHeldEscrowAsync(recipient);

        Assert.Equal("held", view.Status);
        Assert.Equal(EscrowStatus.Held, Stored(grain)!.Status);
        Assert.Equal(0, f.Storage.ReadsOf(grain.GetGrainId()));

        // Any other first call reads: a new activation answers what is stored.
        await DeactivateAsync(grain);
        Assert.Equal("held", (await grain.GetAsync())!.Status);
        Assert.Equal(1, f.Storage.ReadsOf(grain.GetGrainId()));
    }

    [Fact]
    public async Task A_create_retried_on_a_new_activation_gets_the_escrow_it_made_and_writes_nothing_new()
    {
        var recipient = await f.NewRecipientAsync(dailyLimit: 1);
        var (id, grain, first) = await f.NewHeldEscrowAsync(recipient);
        await Eventually.UntilAsync(() => Task.FromResult(f.Emails.Count(id, "new-message") == 1), "the new-message e-mail");
        await DeactivateAsync(grain);
        var stored = Stored(grain)!;

        var again = await grain.CreateAsync(Request(recipient));

        Assert.True(again.Accepted, again.RejectionCode);
        Assert.Equal(first.Id, again.View!.Id);
        Assert.Equal("held", again.View.Status);
        Assert.Equal(first.AmountMinor, again.View.AmountMinor);
        // The insert was refused, then the stored escrow read: it is unchanged (no second hold, no new reply address).
        Assert.Equal(stored.PaymentIntentId, Stored(grain)!.PaymentIntentId);
        Assert.Equal(stored.ReplyTokenHash, Stored(grain)!.ReplyTokenHash);
        Assert.Equal(stored.History.Length, Stored(grain)!.History.Length);
        Assert.True(f.Storage.ReadsOf(grain.GetGrainId()) >= 1, "the stored escrow was read after the insert was refused");
        Assert.Equal(1, f.Emails.Count(id, "new-message"));
    }

    [Fact]
    public async Task A_create_retried_with_another_body_on_a_new_activation_is_refused_as_a_reused_key()
    {
        var recipient = await f.NewRecipientAsync();
        var (_, grain, _) = await f.NewHeldEscrowAsync(recipient);
        await DeactivateAsync(grain);

        var other = await grain.CreateAsync(Request(recipient) with { Message = "Another message entirely.", RequestHash = "CD34" });

        Assert.False(other.Accepted);
        Assert.Equal(Rejection.IdempotencyKeyReused.Code, other.RejectionCode);
        Assert.Equal(EscrowStatus.Held, Stored(grain)!.Status);
    }

    /// <summary>
    /// An unpaid escrow of a recipient with one slot a day, cancelled by an operator: it gave its slot of the day back.
    /// </summary>
    private async Task<(string Recipient, IEscrowGrain Grain, EscrowView Declined)> CancelledUnpaidOfOneSlotADayAsync()
    {
        var recipient = await f.NewRecipientAsync(dailyLimit: 1);
        var (_, grain, declined) = await f.NewHeldEscrowAsync(recipient, paymentMethodId: null);
        Assert.True((await grain.OperateAsync(new OperatorAction(OperatorActionKind.Refund, "never paid", "test"))).Accepted);
        await Eventually.UntilAsync(() => Task.FromResult(Stored(grain)!.Outbox.IsEmpty), "the slot given back");
        return (recipient, grain, declined);
    }

    [Fact]
    public async Task A_slot_taken_by_a_retried_create_of_an_escrow_that_gave_its_slot_back_is_given_back_too()
    {
        var (recipient, grain, _) = await CancelledUnpaidOfOneSlotADayAsync();
        await DeactivateAsync(grain);

        // The retry reserves a slot again before its insert finds the escrow; that slot must not be kept.
        var again = await grain.CreateAsync(Request(recipient, null));
        Assert.True(again.Accepted, again.RejectionCode);
        Assert.Equal("cancelled", again.View!.Status);

        var next = await f.Grains.GetGrain<IEscrowGrain>(Guid.NewGuid()).CreateAsync(Request(recipient));
        Assert.True(next.Accepted, next.RejectionCode);
    }

    [Fact]
    public async Task A_retried_create_refused_a_slot_today_still_gets_the_escrow_it_made()
    {
        var (recipient, grain, declined) = await CancelledUnpaidOfOneSlotADayAsync();
        // Another escrow takes the day's only slot.
        Assert.True((await f.Grains.GetGrain<IEscrowGrain>(Guid.NewGuid()).CreateAsync(Request(recipient))).Accepted);
        await DeactivateAsync(grain);

        var again = await grain.CreateAsync(Request(recipient, null));

        Assert.True(again.Accepted, again.RejectionCode);
        Assert.Equal(declined.Id, again.View!.Id);
        Assert.Equal("cancelled", again.View.Status);
    }

    [Fact]
    public async Task A_new_escrows_reminder_is_registered_while_the_recipient_writes_its_slot()
    {
        var recipient = await f.NewRecipientAsync();
        var grain = f.Grains.GetGrain<IEscrowGrain>(Guid.NewGuid());
        var reminders = f.Cluster.Silos[0].ServiceProvider.GetRequiredService<IReminderTable>();
        f.Storage.Hold();
        Task<EscrowResult> creating;
        try
        {
            creating = grain.CreateAsync(Request(recipient));
            // The recipient's slot write waits at the gate; the reminder the escrow's first write needs does not wait for it.
            await Eventually.UntilAsync(async () => await reminders.ReadRow(grain.GetGrainId(), "escrow") is not null, "the escrow's reminder");
            Assert.False(creating.IsCompleted);
            Assert.Equal(0, f.Storage.WritesTo(grain.GetGrainId()));
        }
        finally
        {
            f.Storage.Open();
        }

        var created = await creating;

        Assert.True(created.Accepted, created.RejectionCode);
        Assert.Equal("held", created.View!.Status);
        Assert.NotNull(await reminders.ReadRow(grain.GetGrainId(), "escrow"));
    }
}
