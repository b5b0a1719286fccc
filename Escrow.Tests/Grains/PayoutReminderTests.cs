using Escrow.Grains.Email;
using Escrow.Testing;
using Orleans.Core.Internal;

namespace Escrow.Tests.Grains;

/// <summary>The recipient's payout-setup reminder: one e-mail a day listing every waiting escrow, never two the same day.</summary>
public sealed class PayoutReminderTests(GrainClusterFixture f) : IClassFixture<GrainClusterFixture>
{
    [Fact]
    public async Task Payout_setup_reminders_go_once_a_day_per_recipient_listing_every_waiting_escrow_even_after_reactivation()
    {
        var (id, accountId, escrows) = await WaitingRecipientAsync(f, escrowCount: 3);
        var recipient = f.Grains.GetGrain<IRecipientGrain>(id);
        int Reminders() => f.Emails.Sent.Count(m => m.Tag == PayoutReminderMail.Tag && m.To == $"{id}@example.com");

        await Eventually.UntilAsync(() => Task.FromResult(Reminders() == 1), "the day's reminder");
        var mail = f.Emails.Sent.Single(m => m.Tag == PayoutReminderMail.Tag && m.To == $"{id}@example.com");
        Assert.Equal("3 payments are waiting for your payout setup", mail.Subject);
        Assert.Equal(3, mail.TextBody.Split('\n').Count(l => l.StartsWith("- 11.25 EUR for a message of ", StringComparison.Ordinal)));
        Assert.Contains($"/onboarding/{id}?t=", mail.TextBody, StringComparison.Ordinal);
        Assert.All(escrows, e => Assert.Equal(1, f.Emails.Count(e, "pending-payout-setup"))); // each escrow's own e-mail, once
        foreach (var e in escrows)
        {
            // The log rows are written after the send (and the recipient's state write that marks the day done).
            await Eventually.UntilAsync(async () => (await f.Store.GetEmailLogAsync(e)).Any(l => l.Kind == PayoutReminderMail.Tag),
                "the reminder's e-mail log row");
            Assert.Single(await f.Store.GetEmailLogAsync(e), l => l.Kind == PayoutReminderMail.Tag && l.Outcome == "sent");
        }

        // More ticks the same day, and a new activation that reads the stored state: no second reminder.
        await recipient.AsReference<IGrainManagementExtension>().DeactivateOnIdle();
        await TicksAsync(accountId, 3);
        Assert.Equal(1, Reminders());

        // The next UTC day, the next reminder.
        f.Clock.Advance(TimeSpan.FromDays(1));
        await Eventually.UntilAsync(() => Task.FromResult(Reminders() == 2), "the next day's reminder");
        await TicksAsync(accountId, 2);
        Assert.Equal(2, Reminders());
    }

    /// <summary>Waits until the recipient's poll has read the account <paramref name="ticks"/> more times.</summary>
    private async Task TicksAsync(string accountId, int ticks)
    {
        var reads = f.Payments.AccountReads.GetValueOrDefault(accountId);
        await Eventually.UntilAsync(() => Task.FromResult(f.Payments.AccountReads.GetValueOrDefault(accountId) >= reads + ticks), $"{ticks} more polls");
    }

    /// <summary>A recipient with an account that cannot receive transfers, and escrows answered and waiting for it.</summary>
    internal static async Task<(string Id, string AccountId, Guid[] Escrows)> WaitingRecipientAsync(GrainClusterFixture f, int escrowCount)
    {
        var id = await f.NewRecipientAsync(payoutsEnabled: false, dailyLimit: 10);
        var link = await f.Grains.GetGrain<IRecipientGrain>(id).CreateOnboardingLinkAsync("https://r.invalid", "https://b.invalid");
        var escrows = new List<Guid>();
        for (var i = 0; i < escrowCount; i++)
        {
            var (escrowId, grain, _) = await f.NewHeldEscrowAsync(id);
            await grain.AcceptReplyAsync(new ReplyReceived(f.Clock.GetUtcNow(), "platform", null));
            await Eventually.UntilAsync(async () => (await grain.GetAsync())!.Status == "pending_user_setup", "pending_user_setup");
            escrows.Add(escrowId);
        }
        return (id, link.AccountId, escrows.ToArray());
    }
}

public sealed class PayoutReminderStorageFixture : GatedStorageFixture;

/// <summary>The reminder is an intent stored before it is sent, like an escrow's outbox effect.</summary>
public sealed class PayoutReminderCrashTests(PayoutReminderStorageFixture f) : IClassFixture<PayoutReminderStorageFixture>
{
    [Fact]
    public async Task A_reminder_sent_but_not_recorded_is_found_by_postmarks_search_and_not_sent_again_the_same_day()
    {
        f.Emails.Hold(m => m.Tag == PayoutReminderMail.Tag);
        var (id, _, escrows) = await PayoutReminderTests.WaitingRecipientAsync(f, escrowCount: 2);
        var grainId = f.Grains.GetGrain<IRecipientGrain>(id).GetGrainId();
        RecipientState? Stored() => f.Storage.Stored<RecipientState>("recipient", grainId);
        int Reminders() => f.Emails.Sent.Count(m => m.Tag == PayoutReminderMail.Tag && m.To == $"{id}@example.com");

        // The intent is stored before the send (which waits at Postmark); then the write that records it as sent fails.
        await Eventually.UntilAsync(() => Task.FromResult(Stored()?.PayoutReminderPending is not null), "the stored intent");
        Assert.Equal(0, Reminders());
        f.Storage.Hold();
        f.Emails.Open();
        await Eventually.UntilAsync(() => Task.FromResult(Reminders() == 1 && f.Storage.Waiting >= 1), "the reminder sent and its record waiting");
        f.Storage.FailWaiting();
        Assert.NotNull(Stored()!.PayoutReminderPending);
        Assert.Null(Stored()!.PayoutReminderDoneOn);

        // The next tick (a new activation) finds the stored intent, asks Postmark, and records what it says.
        f.Storage.Open();
        var today = DateOnly.FromDateTime(f.Clock.GetUtcNow().UtcDateTime);
        await Eventually.UntilAsync(() => Task.FromResult(Stored()?.PayoutReminderDoneOn == today), "the reminder recorded as sent");
        Assert.Null(Stored()!.PayoutReminderPending);
        Assert.Equal(1, Reminders());
        Assert.Single(await f.Store.GetEmailLogAsync(escrows[0]), l => l.Kind == PayoutReminderMail.Tag && l.Outcome == "sent");
    }
}
