"""What the tests share: fakes of the services admod talks to, local servers, data makers and
typed results filled in for a test."""
