// etcd's /v2/stats/store counters, in its JSON order.

export class V2Stats {
  getsSuccess = 0
  getsFail = 0
  setsSuccess = 0
  setsFail = 0
  deleteSuccess = 0
  deleteFail = 0
  updateSuccess = 0
  updateFail = 0
  createSuccess = 0
  createFail = 0
  compareAndSwapSuccess = 0
  compareAndSwapFail = 0
  compareAndDeleteSuccess = 0
  compareAndDeleteFail = 0
  expireCount = 0

  toJson(watchers: number): Record<string, number> {
    return { ...(this as unknown as Record<string, number>), watchers }
  }
}
